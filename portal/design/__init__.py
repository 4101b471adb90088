"""The design system's component page: a development aid, not part of the product."""
