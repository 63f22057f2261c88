"""Plots and widgets for the chapters, by kind: thin layers over matplotlib, seaborn, pandas and ipywidgets.

=============  ==================================================================================
``images``     image grids (grey or RGB), figures as PNG/JPEG bytes, rows and progressions of images
``widgets``    precomputed pictures switched by sliders/dropdowns in the browser (static-site safe)
``results``    tables and plots of runs and sweeps, paired comparisons with one verdict rule
``inversion``  BN inversion diagnostics: teacher confidence, per-layer BN distances, loss terms
``attention``  SAM attention maps of the generator, SFCL similarity matrices
``embedding``  features of real images, cached t-SNE, k-NN accuracy and silhouette, scatter plots
``cam``        Grad-CAM that leaves the model as it found it, CAM overlays, teacher-student CAM difference
=============  ==================================================================================
"""
from .images import (to_pixels, show_images, figure_png, figure_jpeg, image_format, compact_png,
                     plot_image_rows, plot_progression)
from .widgets import slider_stack, nested_stack, slider_stack_2d
from .results import (NO_RESULT, format_mean_std, ablation_table, paired_verdict, paired_differences,
                      paired_table, plot_ablation, plot_student_bars, sweep_overview, plot_accuracy,
                      plot_accuracy_over_time, plot_confusion)
from .inversion import teacher_confidence, confidence_titles, plot_bn_layers, plot_inversion_terms
from .attention import plot_block_maps, similarity_stats, plot_similarity, plot_sfcl_softmax
from .embedding import extract_features, feature_scores, plot_embedding, tsne
from .cam import cam_difference, cam_overlays, grad_cam, stage_block

__all__ = ["to_pixels", "show_images", "figure_png", "figure_jpeg", "image_format", "compact_png",
           "plot_image_rows", "plot_progression", "slider_stack", "nested_stack", "slider_stack_2d", "NO_RESULT",
           "format_mean_std", "ablation_table", "paired_verdict", "paired_differences", "paired_table",
           "plot_ablation", "plot_student_bars", "sweep_overview", "plot_accuracy", "plot_accuracy_over_time",
           "plot_confusion",
           "teacher_confidence", "confidence_titles", "plot_bn_layers", "plot_inversion_terms", "plot_block_maps",
           "similarity_stats", "plot_similarity", "plot_sfcl_softmax", "extract_features", "feature_scores", "plot_embedding", "tsne",
           "cam_difference", "cam_overlays", "grad_cam", "stage_block"]
