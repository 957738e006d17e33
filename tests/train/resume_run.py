"""The run the checkpoint test interrupts: `python resume_run.py DEVICE CKPT OUT`
loads CKPT in this fresh process, trains one more epoch and saves every
variable the run changes to OUT (.npz)."""
import sys

import numpy as np

import graphc as gc
from train_helpers import MLP, teacher_data


def make_run(device):
    """Model (batch norm, dropout), Adam, a step schedule and a shuffled loader with
    a partial last batch (90 = 5 * 16 + 10), all seeded by gc.manual_seed."""
    gc.manual_seed(7)
    model = MLP()
    optimizer = gc.optim.Adam(model.parameters(), lr=0.01)
    scheduler = gc.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    x, y = teacher_data(90)
    loader = gc.data.DataLoader((x, y), batch_size=16, shuffle=True)   # seed from graphc's
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, optimizer, device=device)
    return trainer, loader, scheduler


def final_state(trainer):
    """Every variable the run changes: the model's, the optimizer's, the dropout counter."""
    state = {"model/" + k: v for k, v in trainer.model.state_dict().items()}
    state.update(("optimizer/" + v.name, v.value) for v in trainer.optimizer.variables())
    state["rng_counter"] = trainer.graph.rng_counter.tensor.value
    return state


if __name__ == "__main__":
    device, checkpoint, out = sys.argv[1:]
    trainer, loader, scheduler = make_run(device)
    trainer.load_checkpoint(checkpoint)
    trainer.fit(loader, epochs=1, scheduler=scheduler, progress=False)
    np.savez(out, **final_state(trainer))
