"""Administration: rule table, credit profiles, exemptions, the sweep guard, audit."""
