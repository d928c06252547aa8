"""The local, read-only web view (`reconciler ui`): overview, resource pages, the results
viewer and the costs chart, drawn on the server from the state, the manifests and a live
snapshot. It sits above apply and render and below cli: the CLI supplies what it reads."""
