"""`fblink demo`: the whole bot in a browser, against simulated Slack, Facebook and Vonage."""
