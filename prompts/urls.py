from django.urls import path

from prompts import playground_views, views

app_name = "prompts"

urlpatterns = [
    path("", views.prompt_list, name="list"),
    path("new/", views.prompt_create, name="create"),
    path("export/", views.export_prompts, name="export"),
    path("import/", views.import_prompts, name="import"),
    path("<uuid:template_id>/", views.prompt_detail, name="detail"),
    path("<uuid:template_id>/edit/", views.prompt_edit, name="edit"),
    path("<uuid:template_id>/details/", views.template_details, name="details"),
    path("<uuid:template_id>/diff/", views.version_diff, name="diff"),
    path("<uuid:template_id>/labels/", views.label_move, name="label_move"),
    path("<uuid:template_id>/labels/remove/", views.label_remove, name="label_remove"),
    path("<uuid:template_id>/versions/<int:number>/", views.version_detail, name="version"),
    path("<uuid:template_id>/playground/", playground_views.playground, name="playground"),
    path("<uuid:template_id>/playground/run/", playground_views.playground_run, name="playground_run"),
    path(
        "<uuid:template_id>/playground/runs/<uuid:batch>/",
        playground_views.playground_results,
        name="playground_results",
    ),
]
