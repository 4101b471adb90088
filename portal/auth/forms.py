"""Sign-in and password forms."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError

from portal.accounts.passwords import MAX_LENGTH, password_problems
from portal.core.validators import strip_filter


class LoginForm(FlaskForm):
    email = EmailField(
        "E-mail",
        validators=[DataRequired(), Length(max=254)],
        filters=[strip_filter],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=MAX_LENGTH)], render_kw={"autocomplete": "current-password"}
    )
    submit = SubmitField("Sign in")


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        "E-mail",
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
        filters=[strip_filter],
        render_kw={"autocomplete": "username"},
    )
    submit = SubmitField("Send reset link")


class NewPasswordMixin:
    """A new password checked against NIST SP 800-63B rules and the user's own details."""

    password_context: tuple[str, ...] = ()

    def validate_new_password(self, field):
        problems = password_problems(field.data or "", context=self.password_context)
        if problems:
            raise ValidationError(" ".join(problems))


class SetPasswordForm(NewPasswordMixin, FlaskForm):
    new_password = PasswordField(
        "New password",
        validators=[DataRequired()],
        render_kw={"autocomplete": "new-password"},
        description="At least 12 characters. A passphrase of a few unrelated words works well.",
    )
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("new_password", "The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Set password")


class ChangePasswordForm(SetPasswordForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired(), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Change password")
