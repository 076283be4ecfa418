"""The credit rating model (seed 004): scorecard, basic and guidance runs, overrides, credit
multiples and churn risk. See docs/rating.md."""
