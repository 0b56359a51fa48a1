"""Load, ceiling, invariant and fault benchmarks of the IRT service (see README, "Benchmarks")."""
