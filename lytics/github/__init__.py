"""GitHub extraction: client (PyGithub's requester plus conditional requests and limits),
data sources, storage, streams and the sync that ties them together."""
