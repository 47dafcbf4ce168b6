"""Population analytics (``$population-analytics``): incidence, lab distributions,
treatment outcomes, computed from the searchable records the repository selects."""
