"""FHIR (R5 and R4B, through `fhir.resources`): Stepout's records as a Bundle, and Encounters
read back as sessions. See docs/fhir.md."""
