"""Events: what happened, why, and what to do; the store that keeps them."""
