"""Credit decisions: state machine, rules and ladder, balance events, sweeps, the closed loop, work
orders and pre-cancel reviews."""
