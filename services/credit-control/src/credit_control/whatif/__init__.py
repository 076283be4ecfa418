"""What-if replay of a rule change (issue 19, docs/credit-control.md "What-if replay")."""
