"""Courts: receive pre-trial reports through the gateway's outbox and answer with a receipt."""
