"""The worker and its jobs: making plans, applying approved ones (with drift checks), the credentials DM, reminders and expiry, housekeeping."""
