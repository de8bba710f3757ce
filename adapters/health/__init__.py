"""Ministry of Healthcare: the attached-population register (РПН), dispensary registers, disability."""
