"""The `sentinel-stack` command line."""
