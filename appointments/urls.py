from django.urls import path

from appointments import api

urlpatterns = [
    path("api/appointments/", api.AppointmentListView.as_view(), name="api-appointments"),
    path("api/appointments/<int:pk>/", api.AppointmentDetailView.as_view(), name="api-appointment-detail"),
    path(
        "api/appointments/<int:pk>/reschedule/",
        api.AppointmentRescheduleView.as_view(),
        name="api-appointment-reschedule",
    ),
    path("api/appointments/<int:pk>/cancel/", api.AppointmentCancelView.as_view(), name="api-appointment-cancel"),
    path("api/customers/", api.CustomerListView.as_view(), name="api-customers"),
    path("api/customers/<int:pk>/", api.CustomerDetailView.as_view(), name="api-customer-detail"),
    path("api/services/", api.ServiceListView.as_view(), name="api-services"),
    path("api/services/<int:pk>/", api.ServiceDetailView.as_view(), name="api-service-detail"),
    path("api/staff/", api.StaffListView.as_view(), name="api-staff"),
    path("api/staff/<int:pk>/", api.StaffDetailView.as_view(), name="api-staff-detail"),
]
