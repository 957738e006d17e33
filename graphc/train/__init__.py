"""gc.train: train, evaluate and checkpoint gc.nn models, as a PyTorch loop would.

    model = Net()
    opt = gc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = gc.train.Trainer(model, gc.nn.cross_entropy, opt, device="cpu")
    history = trainer.fit(train_loader, epochs=10, val_loader=val_loader,
                          early_stopping=gc.train.EarlyStopping("accuracy", patience=3),
                          checkpoint="run.npz")
    print(trainer.evaluate(test_loader)["f1"], trainer.predict(x_new))

trainer.py holds the loop, checkpoint.py the .npz format, callbacks.py the
history, early stopping and the progress bar, batches.py the input checks.
"""
from graphc.train.callbacks import EarlyStopping, History
from graphc.train.errors import CheckpointError, TrainError
from graphc.train.trainer import Trainer

__all__ = ["Trainer", "EarlyStopping", "History", "TrainError", "CheckpointError"]
