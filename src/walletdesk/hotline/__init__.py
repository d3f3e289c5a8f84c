"""The phone hotline: IVR flows, call queue and routing, wait estimates, telephony adapters."""
