from django.contrib import admin

from appointments.models import Appointment


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin[Appointment]):
    list_display = ("service", "customer_name", "tenant", "starts_at", "status", "reminder_sent_at")
    list_filter = ("status", ("reminder_sent_at", admin.EmptyFieldListFilter), "starts_at")
    search_fields = ("customer_name", "customer_email", "service", "tenant__slug")
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)
    date_hierarchy = "starts_at"
