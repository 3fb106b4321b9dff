from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render


@login_required
def home(request):
    if not request.user.is_staff:
        return redirect("member:membership")
    return render(request, "home.html")
