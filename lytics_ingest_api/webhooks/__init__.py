"""Signed webhook intake: signature schemes and the endpoints that store deliveries."""
