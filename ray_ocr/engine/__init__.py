"""The Ray side: starting or joining a cluster, placing actors, dispatching batches."""
