"""Small widgets: each takes data and shows it; none of them queries the database."""
