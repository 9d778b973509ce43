"""CDK constructs of the mlserve app."""
