"""SMPP 3.4 for the notifier: the codec (pure), the ESME provider that binds to an SMS centre,
and the simulated SMSC as an SMPP server (the same tests run against it, and by
configuration only against a real SMSC)."""
