"""Reading a day's or a dataset's input: the data contract, the row rules both scoring engines keep,
values as Spark reads them, and where a day's partition lives.
"""
