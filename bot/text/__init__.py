"""What the bot says, in one place: replies, refusals, questions and notices."""
