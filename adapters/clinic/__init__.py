"""Primary-care clinics (ПМСП): continuity-of-care notices as FHIR R4B messages, acknowledged by call back."""
