"""nurture: consent-first e-mail and SMS lead nurture for a clinic."""
