"""The API's routers, one per area (scoring, page, batch uploads); monitoring is in
`lambda_api.monitoring_routes`."""
