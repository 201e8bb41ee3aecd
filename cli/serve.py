"""`kerascnn serve`: the live page and its JSON API (kerascnn.serve), on this machine by default."""
from __future__ import annotations

import click

from cli.common import build_subject, guarded, not_empty, task_options
from cli.domain_options import domain_options

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command()
@task_options
@click.option("--model", "model_paths", multiple=True, type=click.Path(), callback=lambda c, p, v: tuple(
    not_empty("give a .keras file or a run folder")(c, p, m) for m in v),
    help="A .keras classifier or a run folder; repeat to compare models side by side. Default: the "
         "pretrained saved_models/cnn for MNIST.")
@domain_options
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="The port to listen on (0: any free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on. Anything but loopback lets others on that network use the page.")
@guarded
def serve(model_paths, dataset, data_dir, domain, port, host):
    """A live page for your classifier: draw or pick an image and watch the prediction, every
    layer's maps, saliency / Grad-CAM / SmoothGrad / integrated gradients / occlusion, FGSM as you
    move eps, PGD and APGD with progress, corruptions and certified radii; several --model side by side.

    Prints the page's URL; Ctrl-C stops it. Scripts can call the page's JSON API too (POST
    /api/predict, /api/activations, /api/explain, /api/attack, ...; GET /api/models): see
    `python -c "import kerascnn.serve; help(kerascnn.serve)"`.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog from now on, so the URL printed below answers
    except OSError as e:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e} (try another --port)") from None
    subjects = [build_subject(path, dataset, data_dir, domain=domain) for path in (model_paths or (None,))]
    click.echo(f"serving {', '.join(s.name for s in subjects)} on {subjects[0].task.name}: compiling and "
               f"warming each model's functions...", err=True)
    from kerascnn.serve import build, create_app

    # on loopback, only loopback names: a web page cannot reach it through a name of its own (DNS rebinding)
    app = create_app(build(subjects), hosts=list(LOOPBACK) + ["[::1]"] if host in LOOPBACK else None)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    if host not in LOOPBACK:
        click.echo(f"listening on {host}: anyone who can reach this address can use the page and its API", err=True)
    click.echo(f"kerascnn serve: http://{shown}:{bound}/  (Ctrl-C stops it)")
    _run(app, sock)


def _run(app, sock) -> None:
    """uvicorn on the bound socket; Ctrl-C ends it cleanly (uvicorn handles the signal)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    click.echo("kerascnn serve: stopped", err=True)


COMMANDS = [serve]
