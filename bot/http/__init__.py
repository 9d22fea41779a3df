"""The HTTP surface: the Bot Framework's activities, signed events from connected systems, health."""
