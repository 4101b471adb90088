"""The staff relationship workspace: partners, contacts, touchpoints, check-ins, events and resources."""
