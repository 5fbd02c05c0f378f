"""Services of the VPA dashlet pipeline: detector, reminders, journey, notifier, dashlet."""
