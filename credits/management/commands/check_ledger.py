import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from credits import ledger_check


class Command(BaseCommand):
    help = (
        "Check the credit ledger: each account's transaction chain, its balance against its"
        " newest transaction and its lots, each lot against its addition and usages. Prints"
        " every mismatch and exits with status 1 when there is one."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "customers",
            nargs="*",
            metavar="customer",
            help="Check only these: user_<id>, company_<id> or a user's email address.",
        )

    def handle(self, *args, customers, **options):
        try:
            account_ids = ledger_check.resolve_accounts(customers) if customers else None
        except ValidationError as error:
            raise CommandError(error.messages[0]) from error
        started = time.perf_counter()
        report = ledger_check.run_checks(account_ids)
        seconds = time.perf_counter() - started
        which = f"{len(account_ids)} account(s)" if account_ids is not None else "every account"
        for line in ledger_check.describe(report):
            self.stdout.write(line)
        if options["verbosity"] >= 2:
            for name, taken in report.seconds.items():
                self.stdout.write(f"{name}: {taken:.2f} s")
        if report.ok:
            self.stdout.write(f"The ledger of {which} checks out ({seconds:.2f} s).")
            return
        count = sum(report.totals.values())
        raise CommandError(
            f"{count} mismatch{'es' if count != 1 else ''} in the ledger of {which}"
            f" ({seconds:.2f} s)."
        )
