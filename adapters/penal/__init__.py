"""The penal system (КУИС): custody history on request, release notices pushed to the gateway."""
