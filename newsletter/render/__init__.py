"""Rendering (pure): Issue + variant -> HTML (Jinja2, MJML, mjml-python, premailer) and text."""
