"""The catalogue of the series: one place for lesson titles, summaries and the public repository path.

`tools/sync_notebooks.py` writes every notebook's header and footer, the shared cells and the README's
lesson table from this file, so a title or a link is changed here and nowhere else. A fork points
everything at itself with `python tools/sync_notebooks.py --repo owner/name`.
"""

# Where the series is published; the Colab badges open notebooks from here.
GITHUB_REPO = "batchnorm-hands-on/batchnorm-hands-on"
BRANCH = "main"

# (file stem in notebooks/, title, what you will learn — one line)
LESSONS = [
    (
        "01_sigmoid_saturation",
        "Sigmoid saturation",
        "why a deep sigmoid network stops learning when its pre-activations drift away from zero, "
        "and how standardizing them keeps the gradient alive",
    ),
    (
        "02_loss_contours",
        "Feature scale and the shape of the loss",
        "why features on different scales stretch the loss into a narrow valley that gradient descent "
        "zigzags through, measured by the condition number",
    ),
    (
        "03_image_normalization",
        "Image normalization",
        "what `ToTensor` and `Normalize(mean, std)` do to an image, where the ImageNet constants come "
        "from, and how to compute your own dataset's statistics correctly",
    ),
    (
        "04_batchnorm_from_scratch",
        "Batch normalization from scratch",
        "how batch norm computes, learns and remembers its statistics, by writing the layer yourself, "
        "forward and backward, and checking it against `torch.nn.BatchNorm` (equal up to rounding)",
    ),
    (
        "05_mnist_batchnorm",
        "MNIST with and without batch normalization",
        "what batch norm changes in training, by reproducing Figure 1 of Ioffe & Szegedy (2015) and "
        "going further: seeds, learning rates, batch sizes and the eval-mode trap",
    ),
]


def repository_url():
    return f"https://github.com/{GITHUB_REPO}"


def colab_url(stem):
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{BRANCH}/notebooks/{stem}.ipynb"
