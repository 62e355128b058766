"""After publishing and auditing: delivering a month's documents to the customers by e-mail.

* `documents`: what a published month issued, in the order customers must get it (the
  first run's invoices, then per revision its credit notes before its replacements),
  and who each document goes to;
* `messages`: one e-mail per document (templates/email/, the customer's language, the
  PDF and any e-invoice file beside it attached, a Message-ID fixed by the content);
* `ledger`: the append-only record of every attempt, beside the month;
* `smtp`: the server (``smtp://`` with STARTTLS, ``smtps://``), and what its replies mean;
* `send`: the loop that sends what the ledger does not show as accepted, with retries,
  a rate limit and a summary; and the per-document status read back from the ledger.
"""
