"""The API's endpoints, one module per group; :data:`ROUTERS` lists them in order."""
