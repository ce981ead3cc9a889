"""Jobs from draft to delivery: their model and kinds, credits, the poller, delivery."""
