"""Services validate, apply policy and persist; they return frozen models, never ORM rows."""
