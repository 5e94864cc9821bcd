"""Server-side batching: concurrent requests to one signature share one model call."""

import asyncio


class Batcher:
    """Groups concurrent calls of one signature into batches (TF Serving's batching).

    `submit(columns, rows)` queues `rows` rows of batched inputs and returns their outputs;
    a worker takes every request queued while the model was busy, up to `max_batch_size` rows
    (a larger request runs alone), waits at most `timeout_s` more for others (0: no wait, TF
    Serving's default), and runs the model in a thread.
    """

    IDLE_S = 1.0  # an idle worker ends (the next request starts another), so an unloaded
    # model version is not kept alive by a worker waiting for requests that never come

    def __init__(self, run_batch, max_batch_size, timeout_s, metrics):
        self.run_batch, self.max_batch_size, self.timeout_s = run_batch, max_batch_size, timeout_s
        self.metrics = metrics
        self.queue = asyncio.Queue()
        self.worker = None

    async def submit(self, columns, rows):
        if self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._work())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((columns, rows, future))
        return await future

    async def _work(self):
        loop = asyncio.get_running_loop()
        pending = None  # a request that did not fit the last batch: it starts the next one
        while True:
            first = pending
            if first is None:
                try:
                    first = await asyncio.wait_for(self.queue.get(), self.IDLE_S)
                except asyncio.TimeoutError:
                    if self.queue.empty():  # nothing arrived: end; submit starts a new worker
                        self.worker = None
                        return
                    continue
            pending = None
            batch, size = [first], first[1]
            deadline = loop.time() + self.timeout_s
            while size < self.max_batch_size:
                try:
                    item = self.queue.get_nowait()  # whatever arrived while the model ran
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if size + item[1] > self.max_batch_size:
                    pending = item
                    break
                batch.append(item)
                size += item[1]
            await self._run(batch)

    async def _run(self, batch):
        names = list(batch[0][0])
        merged = {name: [v for columns, _, _ in batch for v in columns[name]] for name in names}
        self.metrics.observe_batch(sum(rows for _, rows, _ in batch))
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                None, self.run_batch, merged)
        except Exception as exc:  # the model failed on this batch: every caller hears it
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for _, rows, future in batch:
            if not future.done():
                future.set_result({k: v[start:start + rows] for k, v in outputs.items()})
            start += rows
