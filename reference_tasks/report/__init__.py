"""Figures and tables of saved runs, from their folders alone (no framework)."""
