from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from spacecredits.validators import validate_single_line


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not extra_fields["is_staff"] or not extra_fields["is_superuser"]:
            raise ValueError("A superuser must have is_staff and is_superuser set.")
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in with their email address. Also a credit customer."""

    email = models.EmailField("email address", unique=True)
    first_name = models.CharField(max_length=150, blank=True, validators=[validate_single_line])
    last_name = models.CharField(max_length=150, blank=True, validators=[validate_single_line])
    is_staff = models.BooleanField(
        default=False, help_text="Staff may log in to the Customers pages and the Django admin."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # A person who asked to be forgotten (services.anonymise_user): their name, email and
    # login are gone; their ledger stays, shown as "Former member #<id>".
    anonymised_at = models.DateTimeField(null=True, blank=True)
    anonymised_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The superuser who anonymised this person.",
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["first_name", "last_name", "email"]
        indexes = [
            models.Index(Lower("first_name"), Lower("last_name"), name="user_name_lower_idx"),
        ]
        constraints = [
            # One account per address whatever its case: logins look emails up ignoring case.
            models.UniqueConstraint(
                Lower("email"),
                name="user_email_unique_ignoring_case",
                violation_error_message="Another account already uses this email address.",
            ),
        ]

    def __str__(self):
        return self.get_full_name() or self.email

    def clean(self):
        super().clean()
        self.email = self.email.strip().lower()

    def get_full_name(self):
        if self.anonymised_at:
            return f"Former member #{self.pk}"
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_anonymised(self) -> bool:
        return self.anonymised_at is not None

    def get_absolute_url(self):
        return reverse("customers:profile", args=["users", self.pk])

    def get_short_name(self):
        return self.first_name or self.email

    @property
    def display_name(self):
        return self.get_full_name() or self.email


class Company(models.Model):
    """A company whose members share a company credit balance."""

    name = models.CharField(max_length=200, validators=[validate_single_line])
    email = models.EmailField(
        "billing email",
        blank=True,
        help_text="Gets the company's credit notices by email while it has no active manager.",
    )
    members_can_use_credits = models.BooleanField(
        "Members can see and use company credits",
        default=False,
        help_text="Managers always can; other members only when this is on.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    users = models.ManyToManyField(User, through="CompanyMembership", related_name="companies")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("customers:profile", args=["companies", self.pk])

    @property
    def display_name(self):
        return self.name


def url_kind(customer) -> str:
    """ "users" or "companies": the kind of customer as every URL names it."""
    if isinstance(customer, User):
        return "users"
    if isinstance(customer, Company):
        return "companies"
    raise TypeError(f"A customer is a User or a Company, not {type(customer).__name__}.")


class CompanyMembership(models.Model):
    class Role(models.TextChoices):
        MANAGER = "manager", "Manager"
        MEMBER = "member", "Member"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    monthly_credit_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The most of the company's credits this member may spend in a calendar"
        " month, net of refunds; empty: no limit.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["company__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["company", "user"], name="membership_unique_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=["manager", "member"]), name="membership_role_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(monthly_credit_limit__isnull=True)
                | models.Q(monthly_credit_limit__gte=0),
                name="membership_limit_gte_0",
            ),
        ]

    def __str__(self):
        return f"{self.user} — {self.get_role_display()} of {self.company}"


class CreditsVisibilityChange(models.Model):
    """Who turned "Members can see and use company credits" on or off, and when: one row
    per change (customers.services.set_members_can_use_credits, and the Django admin)."""

    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, related_name="credits_visibility_changes"
    )
    enabled = models.BooleanField(help_text="On (members can) or off (managers only).")
    changed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-changed_at", "-id"], name="visibility_change_company")
        ]

    def __str__(self):
        return f"{self.company}: {'on' if self.enabled else 'off'} by {self.changed_by}"
