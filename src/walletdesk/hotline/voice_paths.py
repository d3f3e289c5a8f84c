"""Where the voice webhooks are served. voice_api serves these paths; the engine's TwiML, the
callback dialer and the softphone name them — one constant each, so they cannot drift apart."""

PREFIX = "/v1/voice"
INCOMING = f"{PREFIX}/incoming"  # a new call
STEP = f"{PREFIX}/step"  # a gather's digits, a recording, the end of a wait in a queue
WAIT = f"{PREFIX}/wait"  # the queue's wait URL
STATUS = f"{PREFIX}/status"  # status callbacks
CALLBACK = f"{PREFIX}/callback"  # a callback's dial answered: connect the customer to the agent
