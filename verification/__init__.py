"""Verification suite: exact toy problems, Monte Carlo estimators with valid confidence.

Modules: ``toys`` (exact and near-exact laws), ``confidence`` (Clopper-Pearson, Hoeffding,
empirical Bernstein), ``estimators`` (threshold, GDP, privacy-loss MC, Renyi), ``runner``
(chunked, executor-independent sampling; numpy or torch), ``audit`` (each planner method's
update rule against its certificate; ``unlearn audit``), ``report`` (JSON, tables, plots),
``plots`` (privacy curves: δ(ε) exact / Rényi / PLD, ε against steps, certified vs audited;
matplotlib Figures that leave the global backend alone).
Imports unlearn_theory; torch and matplotlib only lazily.
"""
