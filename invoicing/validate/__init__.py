"""Stage 2, validate: reference checks, usage rows sorted into billed / duplicate /
rejected, and the month gates that refuse a month whose usage is not that month's."""
