"""sklearn-ddpm."""
